from django.urls import path

from annotator import views

app_name = "annotator"

urlpatterns = [
    path("", views.project_list, name="project_list"),
    path("new/", views.project_create, name="project_create"),
    path("<slug:slug>/", views.project_detail, name="project_detail"),
    path("<slug:slug>/items/", views.items, name="items"),
    path("<slug:slug>/items/<int:item_id>/", views.item_detail, name="item_detail"),
    path("<slug:slug>/items/<int:item_id>/image/", views.item_image, name="item_image"),
    path("<slug:slug>/feedback/", views.feedback, name="feedback"),
    path("<slug:slug>/instructions/", views.instructions, name="instructions"),
    path("<slug:slug>/tasks/", views.tasks, name="tasks"),
]
